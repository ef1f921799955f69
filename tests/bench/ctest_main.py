"""The entry point that the bench script tests share: run a unittest suite for ctest."""
import unittest


def run_for_ctest(suite):
    """0 when the suite passed, 1 when it failed, 77 (ctest's SKIP_RETURN_CODE here) when every test
    skipped, with the reasons printed."""
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        print("every test skipped: " + "; ".join(sorted({why for _, why in result.skipped})))
        return 77
    return 0
