"""easter: dates of Easter Sunday in the Western (Gregorian) and Orthodox
(Julian computus) churches, both given as Gregorian calendar dates."""
