"""SI-VIC: victims and COVID inpatients registered by hospitals, counted every day into Santé
publique France's hospital open-data files (docs/sivic.md)."""
