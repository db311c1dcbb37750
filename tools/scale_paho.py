"""The `scale` job of `deno task bench:cli` with Eclipse Paho for Python.

Usage: python3 scale_paho.py PORT CA_PEM DIR COUNT
Connects COUNT devices, a thread each, at most 50 under way at a time (DIR/device-<i>.pem and
.key, client id d:scale-<i>) with mutual TLS (MQTT 3.1.1, clean session); each subscribes to scale/<i> at QoS 1, publishes one message
there at QoS 1 and disconnects once it received it. Prints {"devices": N, "ms": elapsed} once all
are done; exits 1 when one fails or after 60 s.
"""
import json
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt

port, ca, folder, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
done = []
failed = []
lock = threading.Lock()
under_way = threading.BoundedSemaphore(50)


def device(i):
    with under_way:
        run(i)


def run(i):
    topic = "scale/%d" % i
    kwargs = dict(client_id="d:scale-%d" % i, protocol=mqtt.MQTTv311, clean_session=True)
    try:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, **kwargs)
    except AttributeError:  # paho-mqtt 1.x
        client = mqtt.Client(**kwargs)
    client.tls_set(
        ca_certs=ca,
        certfile="%s/device-%d.pem" % (folder, i),
        keyfile="%s/device-%d.key" % (folder, i),
        tls_version=ssl.PROTOCOL_TLS_CLIENT,
    )

    def on_connect(c, userdata, flags, rc):
        if rc != 0:
            with lock:
                failed.append("device %d: CONNACK %d" % (i, rc))
            c.disconnect()
            return
        c.subscribe(topic, qos=1)

    def on_subscribe(c, userdata, mid, granted_qos):
        c.publish(topic, b"hello %d" % i, qos=1)

    def on_message(c, userdata, msg):
        if msg.topic == topic:
            with lock:
                done.append(i)
            c.disconnect()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect("127.0.0.1", int(port), keepalive=60)
    client.loop_forever()


start = time.perf_counter()
threads = [threading.Thread(target=device, args=(i,), daemon=True) for i in range(count)]
for t in threads:
    t.start()
deadline = time.monotonic() + 60
for t in threads:
    t.join(max(0.0, deadline - time.monotonic()))
elapsed = (time.perf_counter() - start) * 1000
if failed or len(done) != count:
    print("%d of %d devices done; %s" % (len(done), count, "; ".join(failed[:3])), file=sys.stderr)
    sys.exit(1)
print(json.dumps({"devices": count, "ms": elapsed}))
