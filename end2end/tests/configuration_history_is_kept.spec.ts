import { expect, test } from "@playwright/test";
import { addActiveDevice, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 5.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);
const control = `http://${process.env.MUDMAP_E2E_SIM_CONTROL}`;

test("an owner finds the firewall's configuration history: backed up at activation, on request, and when an admin changes it in pfSense (marked live, in words and as raw XML), compares any two, downloads one and acknowledges the change", async ({ page }) => {
  test.setTimeout(120_000);
  await signInAsDemo(page, "/devices");
  await addActiveDevice(page, "e2e-history", simBase + 5);
  await openHydrated(page, "/");
  const fleetRow = page.getByRole("table", { name: "Fleet" }).getByTestId("fleet-row").filter({ hasText: "e2e-history" });
  const deviceId = (await fleetRow.getAttribute("data-device")) ?? "";

  const errors = watchForErrors(page);
  await openHydrated(page, `/devices/${deviceId}`);
  await page.getByRole("tab", { name: "History" }).click();
  const rows = page.getByRole("table", { name: "Configuration history" }).getByTestId("revision-row");
  // The activation's backup runs as a job a moment after the activation.
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(rows.filter({ hasText: "At activation" })).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(rows.first()).toContainText("Initial setup");

  // On request: queued, then listed first (the same configuration, stored once).
  await page.getByRole("button", { name: "Back up now" }).click();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText("Backup queued");
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(rows).toHaveCount(2, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(rows.first()).toContainText("On request");

  // An admin changes the configuration in pfSense's GUI: Mudmap backs it up and says what changed.
  const response = await fetch(`${control}/devices/5/faults`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ edit_config: true }),
  });
  expect(response.ok).toBe(true);
  // The page is open: the mark arrives live, with pfSense's record of who changed it.
  const notice = page.getByRole("status", { name: "Changed outside Mudmap" });
  await expect(notice).toContainText("admin@10.0.0.9", { timeout: 30_000 });
  const drift = rows.filter({ hasText: "Changed outside Mudmap" });
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(drift).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(drift).toContainText("Firewall: Aliases - saved");
  await drift.getByRole("button", { name: /What changed/ }).click();
  const comparison = page.getByRole("region", { name: "Comparison" });
  await expect(comparison.getByTestId("config-changes")).toContainText("alias added_by_admin_1 added (host): 192.0.2.2");

  // The raw XML diff is one click away, secrets masked; an owner may reveal them.
  await comparison.getByRole("button", { name: "Show the raw XML diff" }).click();
  const raw = comparison.getByTestId("raw-diff");
  await expect(raw).toContainText(/\+\s+<name>added_by_admin_1<\/name>/);
  await expect(comparison).toContainText("Secrets (password hashes, keys, pre-shared keys) are masked.");
  await comparison.getByRole("button", { name: "Reveal secrets" }).click();
  await expect(comparison).toContainText("that you looked is recorded in the audit log", { timeout: 10_000 });

  // Any two: the first backup with the newest.
  const form = page.getByRole("form", { name: "Compare two backups" });
  await form.getByLabel("Compare", { exact: true }).selectOption({ index: 2 });
  await form.getByLabel("with", { exact: true }).selectOption({ index: 0 });
  await form.getByRole("button", { name: "Compare" }).click();
  await expect(comparison.getByRole("heading")).toContainText("compared with the backup of");
  await expect(comparison.getByTestId("config-changes")).toContainText("alias added_by_admin_1 added");

  // Download: the configuration as pfSense wrote it.
  const download = page.waitForEvent("download");
  await rows.first().getByRole("button", { name: /Download the backup of/ }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^config-e2e-history-\d{8}-\d{6}\.xml$/);
  const path = await file.path();
  const { readFileSync } = await import("node:fs");
  expect(readFileSync(path, "utf8")).toContain("<name>added_by_admin_1</name>");

  // The fleet marks it too, until someone acknowledges the change.
  await openHydrated(page, "/");
  await expect(fleetRow.getByTestId("drift-mark")).toHaveText("Changed outside Mudmap");
  await openHydrated(page, `/devices/${deviceId}`);
  await notice.getByRole("button", { name: "Acknowledge" }).click();
  await expect(notice).toHaveCount(0);
  await openHydrated(page, "/");
  await expect(fleetRow.getByTestId("drift-mark")).toHaveCount(0);
  expect(errors).toEqual([]);
});
