import { expect, test } from "@playwright/test";
import { addActiveDevice, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 5.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);

test("an owner finds the firewall's configuration history: backed up at activation, and again on request", async ({ page }) => {
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
  expect(errors).toEqual([]);
});
