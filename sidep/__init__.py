"""SI-DEP: every lab's COVID test results in one place, positives turned into codes and
investigations, and the daily epidemic indicators (docs/sidep.md)."""
