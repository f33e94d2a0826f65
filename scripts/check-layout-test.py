#!/usr/bin/env python3
"""Tests of check-layout.py on small made-up crates (and one reading of the
bench's own sources): each rule it enforces fails where it should and only
there. Instant; run by scripts/test before the checker itself."""
import importlib.util
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('check_layout', os.path.join(HERE, 'check-layout.py'))
layout = importlib.util.module_from_spec(spec)
spec.loader.exec_module(layout)


def crate(files):
    """A temporary src/ holding `files` (relative path -> text)."""
    tmp = tempfile.TemporaryDirectory()
    for rel, text in files.items():
        path = os.path.join(tmp.name, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(text)
    return tmp


def edges(files):
    with crate(files) as src:
        return layout.graph(layout.modules(src))


class Circles(unittest.TestCase):
    def test_nested_and_multi_line_groups(self):
        g = edges({
            'lib.rs': 'mod a; mod b; mod c;\n',
            'a.rs': 'pub struct X;\n',
            # `b` stands after a nested group, on a line of its own.
            'c/mod.rs': 'use crate::{\n    a::{self, X},\n    b,\n};\n',
            'b.rs': 'pub fn f() -> crate::c::Y { todo!() }\n',
        })
        self.assertEqual(g['c'], {'a', 'b'})
        self.assertEqual(layout.circles(g), [['b', 'c']])

    def test_one_line_group_and_inline_paths(self):
        g = edges({
            'cmd.rs': 'use crate::{report, run};\n',
            'report.rs': 'fn f() { crate :: run::go(); }\n',
            'run.rs': 'fn g() {}\n',
        })
        self.assertEqual(g['cmd'], {'report', 'run'})
        self.assertEqual(g['report'], {'run'})
        self.assertEqual(layout.circles(g), [])

    def test_comments_and_test_modules_are_not_dependencies(self):
        g = edges({
            'd.rs': '//! Uses crate::e in prose.\n/* crate::e */\n// crate::e\n'
                    '#[cfg(test)]\nmod tests {\n    use crate::e;\n}\n',
            'e.rs': 'use crate::d;\n',
        })
        self.assertEqual(g['d'], set())
        self.assertEqual(layout.circles(g), [])

    def test_a_longer_circle(self):
        g = edges({
            'a.rs': 'use crate::b::B;\n',
            'b.rs': 'use crate::{c::C};\n',
            'c.rs': 'use crate::{x, a::{A}};\n',
            'x.rs': '',
        })
        self.assertEqual(layout.circles(g), [['a', 'b', 'c']])

    def test_the_bench_is_read(self):
        src = os.path.join(HERE, '..', 'crates', 'picoshare-bench', 'src')
        g = layout.graph(layout.modules(src))
        # `use crate::{report, run};` in cmd/run.rs, and the block loop's plan.
        self.assertTrue({'report', 'run'} <= g['cmd'], g['cmd'])
        self.assertIn('plan', g['run'])


class Sizes(unittest.TestCase):
    def check(self, files):
        with crate(files) as src:
            return layout.check(src, 600)

    def test_a_file_over_the_limit_fails_and_its_tests_do_not_count(self):
        code = 'fn f() {}\n' * 600
        tests = '#[cfg(test)]\nmod tests {\n' + '    fn t() {}\n' * 500 + '}\n'
        self.assertTrue(self.check({'a.rs': code + tests}))
        self.assertFalse(self.check({'a.rs': code + 'fn g() {}\n' + tests}))
        self.assertFalse(self.check({'lib.rs': code + 'fn g() {}\n'}))


if __name__ == '__main__':
    sys.stdout = open(os.devnull, 'w')  # the checker's own printing
    unittest.main()
