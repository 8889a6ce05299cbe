"""Hospital drug stocks (MaPUI): stocks and average use per virtual drug, days of cover and
alerts, the weekly allocation of a national quota, and regional redeployment."""
