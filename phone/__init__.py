"""The app side: what a StopCovid phone holds (``phone.state``) and how it talks to the
server (``phone.client``). Used by the simulator (``client_sim/``) and the Bluetooth client
(``ble/``) alike; it imports nothing of the server.
"""
