"""The ROBERT server: the aiohttp adapter around ``protocol/``, its stores and its worker."""
