"""Contact Covid: case investigations from patient zero to every contact, at three levels."""
