"""The Bluetooth side of a ROBERT phone: advertise our HELLO, hear others', feed a ``Phone``.

``payload`` holds the over-the-air format (sans-IO, like ``protocol/``); ``advertiser/`` and
``scanner/`` hold one module per radio backend, chosen by name; ``node.BleNode`` wires a
``HelloSource`` and a ``HelloSink`` (see ``interfaces``) to them. See ``docs/ble.md``.
"""
