import datetime
import unittest

from easter import computus


class Known(unittest.TestCase):
    # dates from the churches' published calendars
    WESTERN = {1961: (4, 2), 2000: (4, 23), 2019: (4, 21), 2024: (3, 31), 2038: (4, 25)}
    ORTHODOX = {2000: (4, 30), 2019: (4, 28), 2024: (5, 5), 2025: (4, 20), 2027: (5, 2)}

    def test_western(self):
        for year, (m, d) in self.WESTERN.items():
            self.assertEqual(computus.western(year), datetime.date(year, m, d), year)

    def test_orthodox(self):
        for year, (m, d) in self.ORTHODOX.items():
            self.assertEqual(computus.orthodox(year), datetime.date(year, m, d), year)

    def test_always_a_sunday(self):
        for year in range(1900, 2100):
            self.assertEqual(computus.western(year).weekday(), 6, year)
            self.assertEqual(computus.orthodox(year).weekday(), 6, year)

    def test_before_1583(self):
        with self.assertRaises(ValueError):
            computus.western(1500)


if __name__ == "__main__":
    unittest.main()
