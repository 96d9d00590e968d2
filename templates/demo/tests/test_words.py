import unittest

from textkit.words import words


class WordsTest(unittest.TestCase):
    def test_splits_on_whitespace(self):
        self.assertEqual(words("a  b\tc"), ["a", "b", "c"])


if __name__ == "__main__":
    unittest.main()
