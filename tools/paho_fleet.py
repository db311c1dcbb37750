"""The fleet job with Eclipse Paho for Python in one selector loop: a peer for tools/bench_fleet.ts.

Usage: python3 paho_fleet.py HOST PORT CA_PEM DEVICES_CSV CONCURRENCY
DEVICES_CSV has one device a line: CHAIN_PEM,KEY_PEM,COMMON_NAME. Each device connects with
mutual TLS as d:<CN> (MQTT 3.1.1, clean session), subscribes to fleet/<CN> (QoS 1), publishes one
message there (QoS 0), waits for it to come back and disconnects; CONCURRENCY devices at a time,
all in this one thread (Paho's connect, TCP and TLS handshake included, blocks that thread).
Prints one JSON object: devices, ok, failed, wallMs, cpuMs, rssBaseKiB, rssPeakKiB, peakInFlight.
"""
import json
import os
import selectors
import ssl
import sys
import time

import paho.mqtt.client as mqtt

host, port, ca, devices_csv, concurrency = sys.argv[1:6]
port, concurrency = int(port), int(concurrency)
with open(devices_csv) as f:
    devices = [line.strip().split(",") for line in f if line.strip()]

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE_KIB


selector = selectors.DefaultSelector()
active = {}  # file descriptor -> client
state = {"ok": 0, "failed": 0, "peak": 0}


def finish(client, ok):
    info = client._userdata
    if info["done"]:
        return
    info["done"] = True
    state["ok" if ok else "failed"] += 1
    if not ok:
        print("device %s: %s" % (info["topic"], info.get("error", "failed")), file=sys.stderr)


def on_connect(client, info, flags, rc):
    if rc != 0:
        info["error"] = "CONNACK %d" % rc
        client.disconnect()
        return
    client.subscribe(info["topic"], qos=1)


def on_subscribe(client, info, mid, granted_qos):
    client.publish(info["topic"], b"hello", qos=0)


def on_message(client, info, message):
    if message.topic == info["topic"]:
        info["received"] = True
        client.disconnect()


def on_disconnect(client, info, rc):
    finish(client, info.get("received", False))


def start(chain, key, cn):
    info = {"topic": "fleet/" + cn, "done": False, "started": time.monotonic()}
    client = mqtt.Client(client_id="d:" + cn, clean_session=True, userdata=info,
                         protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=ca, certfile=chain, keyfile=key, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    try:
        client.connect(host, port, keepalive=30)
    except Exception as error:  # refused, TLS failure: the device fails, the others go on
        info["error"] = str(error)
        finish(client, False)
        return
    fd = client.socket().fileno()
    info["fd"] = fd
    active[fd] = client
    selector.register(fd, selectors.EVENT_READ, client)


base = rss_kib()
peak_rss = base
cpu0 = time.process_time()
t0 = time.perf_counter()
queue = list(devices)
last_sample = 0.0
while queue or active:
    while queue and len(active) < concurrency:
        start(*queue.pop(0))
    state["peak"] = max(state["peak"], len(active))
    for key, _ in selector.select(timeout=0.01):
        key.data.loop_read()
    now = time.monotonic()
    for fd, client in list(active.items()):
        if client.want_write():
            client.loop_write()
        client.loop_misc()
        info = client._userdata
        if not info["done"] and now - info["started"] > 10:
            info["error"] = "no echo within 10 s"
            finish(client, False)
            client.disconnect()
        if info["done"] or client.socket() is None:
            selector.unregister(fd)
            del active[fd]
            if client.socket() is not None:
                client.socket().close()
    if now - last_sample > 0.02:
        peak_rss = max(peak_rss, rss_kib())
        last_sample = now
wall_ms = (time.perf_counter() - t0) * 1000
cpu_ms = (time.process_time() - cpu0) * 1000
peak_rss = max(peak_rss, rss_kib())
print(json.dumps({
    "devices": len(devices), "ok": state["ok"], "failed": state["failed"],
    "wallMs": wall_ms, "cpuMs": cpu_ms, "rssBaseKiB": base, "rssPeakKiB": peak_rss,
    "peakInFlight": state["peak"],
}))
