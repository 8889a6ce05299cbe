"""Every format labs send, read into ``sidep.model`` records: HL7 v2 (``hl7``), FHIR R4
(``fhir``), HPRIM Santé (``hprim``), the flat CSV (``csvfile``); ``detect`` picks one
(docs/sidep-formats.md). Pure: bytes in, ``Parsed`` out, never an exception."""
