import { defineConfig } from "@playwright/test";
import * as os from "node:os";
import * as path from "node:path";

// The server under test: the debug build of `mudmap`, on its own port and a throwaway data dir.
const port = Number(process.env.MUDMAP_E2E_PORT ?? 3917);
const dataDir = path.join(os.tmpdir(), `mudmap-e2e-${process.pid}`);
const binary = process.env.MUDMAP_BIN ?? path.join(__dirname, "..", "target", "debug", "mudmap");
// Mail goes over real SMTP to Mudmap's own sink, which writes each message as an .eml file here.
// Set once in the main process; the test workers inherit it.
const smtpPort = port + 1;
process.env.MUDMAP_E2E_MAIL_DIR ??= path.join(os.tmpdir(), `mudmap-e2e-mail-${process.pid}`);
const mailDir = process.env.MUDMAP_E2E_MAIL_DIR;
// The demo account's password (the server prints it; tests sign in with it).
process.env.MUDMAP_E2E_DEMO_PASSWORD ??= "demo-password-for-e2e";
// A fleet of fresh simulated firewalls in its own process, with its fault-switching API. Each spec
// owns its devices: 0 and 1 devices_are_activated, 2 fleet_is_live, 3 viewers_only_read,
// 4 devices_reboot_and_report_status, 5 configuration_history_is_kept, 6 the_fleet_is_searched. A reboot from Mudmap keeps a device down for 8 seconds (long
// enough for a loaded machine to show 'Rebooting' on both pages first).
process.env.MUDMAP_E2E_SIM_BASE ??= String(port + 20);
process.env.MUDMAP_E2E_SIM_CONTROL ??= `127.0.0.1:${port + 2}`;
process.env.MUDMAP_E2E_SIM_PASSWORD ??= "sim-admin-password";

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: process.env.CI ? 2 : undefined,
  retries: 0,
  reporter: process.env.CI ? [["list"]] : [["list"], ["html", { open: "never" }]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium; Playwright's own browser download is never used.
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
  webServer: [
    {
      command: `rm -rf ${mailDir} && exec ${binary} mail-sink --listen 127.0.0.1:${smtpPort} --dir ${mailDir}`,
      port: smtpPort,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: `exec ${binary} sim --fresh --devices 7 --reboot-time 8s --base-port ${process.env.MUDMAP_E2E_SIM_BASE} --control ${process.env.MUDMAP_E2E_SIM_CONTROL} --password ${process.env.MUDMAP_E2E_SIM_PASSWORD}`,
      url: `http://${process.env.MUDMAP_E2E_SIM_CONTROL}/devices`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: `rm -rf ${dataDir} && exec ${binary} serve`,
      url: `http://127.0.0.1:${port}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      env: {
        MUDMAP_LISTEN: `127.0.0.1:${port}`,
        MUDMAP_PUBLIC_URL: `http://127.0.0.1:${port}`,
        MUDMAP_DATA_DIR: dataDir,
        MUDMAP_LOG_LEVEL: "warn",
        MUDMAP_SMTP_HOST: "127.0.0.1",
        MUDMAP_SMTP_PORT: String(smtpPort),
        MUDMAP_SMTP_SECURITY: "none",
        // Three simulated firewalls inside the server (the demo organisation's devices).
        MUDMAP_DEMO_DEVICES: "3",
        MUDMAP_DEMO_BASE_PORT: String(port + 10),
        // Poll every second, so a changed host key shows within the test's patience.
        MUDMAP_POLL_INTERVAL_SECS: "1",
        MUDMAP_DEMO_PASSWORD: process.env.MUDMAP_E2E_DEMO_PASSWORD,
      },
    },
  ],
});
