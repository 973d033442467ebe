import { expect, test } from "@playwright/test";
import { addActiveDevice, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 4, which
// stays down for 8 seconds after a reboot.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);

test("an owner reads a firewall's leases, ARP table and packages, reboots it after typing its name, and watches it come back live", async ({
  page,
  context,
}) => {
  test.setTimeout(90_000);
  await signInAsDemo(page, "/devices");
  // The fleet in a second tab (open first, so it follows the device from its activation on), to
  // watch the reboot there too.
  const fleetPage = await context.newPage();
  await openHydrated(fleetPage, "/");
  await addActiveDevice(page, "e2e-reboot", simBase + 4);
  const fleetErrors = watchForErrors(fleetPage);
  const fleetRow = fleetPage.getByRole("table", { name: "Fleet" }).getByTestId("fleet-row").filter({ hasText: "e2e-reboot" });
  await expect(fleetRow).toContainText("Online", { timeout: 15_000 });
  const deviceId = (await fleetRow.getAttribute("data-device")) ?? "";

  // The device page, online.
  const errors = watchForErrors(page);
  await openHydrated(page, `/devices/${deviceId}`);
  await expect(page.getByRole("heading", { level: 1, name: "e2e-reboot" })).toBeVisible();
  const health = page.getByTestId("device-health");
  await expect(health).toContainText("Online");

  // The Status tab reads the tables from the firewall when it is first opened.
  await page.getByRole("tab", { name: "Status" }).click();
  await expect(page.getByTestId("tables-read")).toContainText("Read from the firewall at");
  const printer = page.getByRole("table", { name: "DHCP leases" }).getByTestId("lease-row").filter({ hasText: "printer" });
  await expect(printer).toContainText("static");
  await expect(page.getByRole("table", { name: "ARP table" }).getByTestId("arp-row").first()).toContainText("permanent");
  await expect(
    page.getByRole("table", { name: "Installed packages" }).getByTestId("package-row").filter({ hasText: "openvpn-client-export" }),
  ).toBeVisible();

  // Reboot: the button works only once the device's name is typed exactly.
  await page.getByRole("tab", { name: "Diagnostics" }).click();
  // (The tables read above stay on the page through the live updates below: not read again.)
  await page.getByRole("button", { name: "Reboot…" }).click();
  const dialog = page.getByRole("dialog", { name: "Reboot e2e-reboot?" });
  const reboot = dialog.getByRole("button", { name: "Reboot", exact: true });
  await expect(reboot).toBeDisabled();
  const confirm = dialog.getByRole("textbox", { name: "Type e2e-reboot to confirm" });
  await confirm.fill("e2e-rebo");
  await expect(reboot).toBeDisabled();
  await confirm.fill("e2e-reboot");
  await expect(reboot).toBeEnabled();
  await reboot.click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText("e2e-reboot is rebooting");

  // Both open pages follow the server: Rebooting (who asked, no power buttons meanwhile), then Online.
  await Promise.all([
    expect(health).toContainText("Rebooting"),
    expect(fleetRow).toContainText("Rebooting"),
  ]);
  await expect(page.getByText("Rebooting, requested by demo@mudmap.test")).toBeVisible();
  await expect(page.getByRole("button", { name: "Reboot…" })).toBeDisabled();
  await Promise.all([
    expect(health).toContainText("Online", { timeout: 40_000 }),
    expect(fleetRow).toContainText("Online", { timeout: 40_000 }),
  ]);
  await expect(page.getByRole("button", { name: "Reboot…" })).toBeEnabled();
  // The live updates kept what the Status tab had read: no second read, no error.
  await page.getByRole("tab", { name: "Status" }).click();
  await expect(printer).toBeVisible();
  await expect(page.getByRole("alert")).toHaveCount(0);
  expect(errors).toEqual([]);
  expect(fleetErrors).toEqual([]);
});
