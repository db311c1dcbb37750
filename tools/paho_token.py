"""The token job with Eclipse Paho for Python: a third-party peer for tests and benchmarks.

Usage: python3 paho_token.py HOST PORT CA_PEM CERT_CHAIN_PEM KEY_PEM CLIENT_ID
Connects with mutual TLS (MQTT 3.1.1, clean session), subscribes to s/dat, publishes an empty
message on s/uat and prints the first s/dat line (71,<JWT>). Exits 1 after 10 s without one.
"""
import ssl
import sys
import threading

import paho.mqtt.client as mqtt

host, port, ca, cert, key, client_id = sys.argv[1:7]
kwargs = dict(client_id=client_id, protocol=mqtt.MQTTv311, clean_session=True)
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kwargs)
except AttributeError:  # paho-mqtt 1.x
    client = mqtt.Client(**kwargs)
client.tls_set(ca_certs=ca, certfile=cert, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
result = {}


def on_connect(c, userdata, flags, rc):
    if rc != 0:
        result["error"] = "CONNACK %d" % rc
        c.disconnect()
        return
    c.subscribe("s/dat", qos=0)


def on_subscribe(c, userdata, mid, granted_qos):
    c.publish("s/uat", b"", qos=0)


def on_message(c, userdata, msg):
    line = msg.payload.decode()
    if line.startswith("71,"):
        result["line"] = line
        c.disconnect()


client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
timer = threading.Timer(10, client.disconnect)
timer.start()
client.connect(host, int(port), keepalive=30)
client.loop_forever()
timer.cancel()
if "line" not in result:
    print(result.get("error", "no token"), file=sys.stderr)
    sys.exit(1)
print(result["line"])
