"""Critical-care beds (ROR): establishments, units and their beds, updates by form, API, FHIR
and file, tension dashboards, the daily bulletin and the nearest free bed."""
