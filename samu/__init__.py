"""SI-SAMU: the event board shared by SAMU, ARS, defence zones and the national crisis
centre (events on a map, scoped messages, the append-only "main courante", inter-hospital
transfer requests), pushed live to open pages."""
