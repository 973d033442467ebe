import { expect, test } from "@playwright/test";
import { addActiveDevice, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 5.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);
const control = `http://${process.env.MUDMAP_E2E_SIM_CONTROL}`;

test("an owner finds the firewall's configuration history: backed up at activation, on request, and when an admin changes it in pfSense, with what changed in words", async ({ page }) => {
  test.setTimeout(90_000);
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
  const drift = rows.filter({ hasText: "Changed outside Mudmap" });
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(drift).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(drift).toContainText("Firewall: Aliases - saved");
  await drift.getByRole("button", { name: /What changed/ }).click();
  const changes = page.getByRole("region", { name: "Changes in this backup" });
  await expect(changes.getByTestId("config-changes")).toContainText("alias added_by_admin_1 added (host): 192.0.2.2");
  expect(errors).toEqual([]);
});
