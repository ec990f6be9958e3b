"""The ctest entry point of every Python test file:

    python3 -m pylib.runner test_module [...]

Runs the modules' unittest tests verbosely. Exit 0 when every test passed
(some may be skipped: unittest prints each skip with its reason), 1 on any
failure or error, 77 when there were tests and every one was skipped, so
ctest (SKIP_RETURN_CODE 77) shows the entry as skipped, not passed.
"""

import sys
import unittest

SKIPPED = 77


def main(argv):
    if not argv:
        sys.stderr.write(__doc__)
        return 2
    suite = unittest.defaultTestLoader.loadTestsFromNames(argv)
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    # A class skipped in setUpClass counts one skip and runs no test.
    skipped_tests = sum(1 for test, _ in result.skipped if isinstance(test, unittest.TestCase))
    if result.skipped and result.testsRun - skipped_tests == 0:
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
