import { expect, test } from "@playwright/test";
import { signInAsDemo, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 2.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);
const control = `http://${process.env.MUDMAP_E2E_SIM_CONTROL}`;
const simPassword = process.env.MUDMAP_E2E_SIM_PASSWORD ?? "";

async function fault(index: number, patch: Record<string, boolean>) {
  const response = await fetch(`${control}/devices/${index}/faults`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(patch),
  });
  expect(response.ok).toBe(true);
}

test("the fleet page shows live health: a firewall that stops answering turns offline and comes back, without a reload", async ({ page }) => {
  test.setTimeout(150_000);
  await signInAsDemo(page, "/devices");
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Add device" }) });
  await form.getByRole("textbox", { name: "Name" }).fill("e2e-live");
  await form.getByRole("textbox", { name: "Host" }).fill("127.0.0.1");
  await form.getByRole("spinbutton", { name: "SSH port" }).fill(String(simBase + 2));
  await form.getByRole("button", { name: "Add device" }).click();
  const row = page.getByRole("table", { name: "Inactive devices" }).getByTestId("device-row").filter({ hasText: "e2e-live" });
  await row.getByRole("button", { name: "Activate" }).click();
  const dialog = page.getByRole("dialog", { name: "Activate e2e-live" });
  await expect(dialog.getByTestId("host-key-fingerprint")).toHaveText(/^SHA256:/);
  await dialog.locator('input[name="activate-password"]').fill(simPassword);
  await dialog.getByRole("button", { name: "Fingerprint matches — activate" }).click();
  await expect(dialog.getByTestId("activation-outcome")).toContainText("is active", { timeout: 20_000 });
  await dialog.getByRole("button", { name: "Done" }).click();

  // The fleet page: counts, then the device online with its figures (the monitor polls every second here).
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Fleet", exact: true }).click();
  const errors = watchForErrors(page);
  const fleet = page.getByRole("table", { name: "Fleet" });
  const live = fleet.getByTestId("fleet-row").filter({ hasText: "e2e-live" });
  await expect(live).toContainText("Online", { timeout: 15_000 });
  await expect(live).toContainText("1/1 up");
  await expect(page.getByTestId("count-inactive")).toContainText(/\d+/);

  // Search as you type narrows the table.
  await page.getByRole("searchbox", { name: "Search devices" }).fill("e2e-liv");
  await expect(fleet.getByTestId("fleet-row")).toHaveCount(1);
  await expect(page.getByRole("status").filter({ hasText: "1–1 of 1" })).toBeVisible();

  // The firewall stops answering: offline in the open page, no reload.
  await fault(2, { refuse: true, drop_connections: true });
  await expect(live).toContainText("Offline", { timeout: 20_000 });
  await fault(2, { refuse: false });
  // The engine's reconnect backoff has grown while the device refused (up to 16 s by now).
  await expect(live).toContainText("Online", { timeout: 45_000 });

  // Mudmap's key logs in but no longer as root (as if its line had moved to a normal account):
  // said at once, with what to do, never a silent Online.
  await fault(2, { no_root: true, drop_connections: true });
  await expect(live).toContainText("No root access", { timeout: 20_000 });
  await expect(live).toContainText("re-activate the device");
  await fault(2, { no_root: false, drop_connections: true });
  await expect(live).toContainText("Online", { timeout: 45_000 });

  // Sorting by a column says so to assistive technology.
  await page.getByRole("button", { name: "CPU" }).click();
  await expect(page.getByRole("columnheader", { name: "CPU" })).toHaveAttribute("aria-sort", "ascending");

  // The device page: stop a service (after confirming) and start it again; the simulator obeys.
  await live.getByRole("link", { name: "e2e-live" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "e2e-live" })).toBeVisible();
  await page.getByRole("tab", { name: "Services" }).click();
  const unbound = page.getByRole("table", { name: "Services" }).getByTestId("service-row").filter({ hasText: "unbound" });
  await expect(unbound).toContainText("running");
  await unbound.getByRole("button", { name: "Stop" }).click();
  await page.getByRole("dialog", { name: "Stop this service?" }).getByRole("button", { name: "Stop" }).click();
  await expect(unbound).toContainText("stopped");
  const sim = async () => ((await (await fetch(`${control}/devices`)).json()) as { devices: { services_running: Record<string, boolean> }[] }).devices[2];
  expect((await sim()).services_running.unbound).toBe(false);
  await unbound.getByRole("button", { name: "Start" }).click();
  await expect(unbound).toContainText("running");
  expect((await sim()).services_running.unbound).toBe(true);
  expect(errors).toEqual([]);
});
