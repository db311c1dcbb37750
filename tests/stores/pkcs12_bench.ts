import { readPkcs12 } from "../../lib/stores/pkcs12/read.ts";

const fixtures = new URL("../../fixtures/", import.meta.url);
const VARIANTS = ["openssl3", "legacy", "jdk", "nomac"] as const;
const DEVICES = ["rsa", "ec256", "ec384"] as const;

for (const variant of VARIANTS) {
  for (const device of DEVICES) {
    const file = `devices/${device}.${variant}.p12`;
    const bytes = await Deno.readFile(new URL(file, fixtures));
    Deno.bench({
      name: `readPkcs12() ${file}`,
      group: variant,
      baseline: device === "rsa",
      async fn(): Promise<void> {
        await readPkcs12(bytes, { password: "changeit", name: file });
      },
    });
  }
}

for (const file of ["devices/multi.p12", "devices/truststore.p12"]) {
  const bytes = await Deno.readFile(new URL(file, fixtures));
  Deno.bench({
    name: `readPkcs12() ${file}`,
    group: "other",
    async fn(): Promise<void> {
      await readPkcs12(bytes, { password: "changeit", name: file });
    },
  });
}
