import { expect, test, type Page } from "@playwright/test";
import { DEMO_EMAIL, signInAsDemo, waitForMail, watchForErrors } from "./helpers";

// A separate `mudmap sim --fresh` fleet (playwright.config.ts): new firewalls, not yet activated.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);
const control = `http://${process.env.MUDMAP_E2E_SIM_CONTROL}`;
const simPassword = process.env.MUDMAP_E2E_SIM_PASSWORD ?? "";

type SimDevice = { index: number; agent_installed: boolean; service_account: boolean };

async function simDevice(index: number): Promise<SimDevice> {
  const response = await fetch(`${control}/devices`);
  const body = (await response.json()) as { devices: SimDevice[] };
  return body.devices[index];
}

async function addDevice(page: Page, name: string, port: number) {
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Add device" }) });
  await form.getByRole("textbox", { name: "Name" }).fill(name);
  await form.getByRole("textbox", { name: "Host" }).fill("127.0.0.1");
  await form.getByRole("spinbutton", { name: "SSH port" }).fill(String(port));
  await form.getByRole("button", { name: "Add device" }).click();
  const row = page.getByRole("table", { name: "Inactive devices" }).getByTestId("device-row").filter({ hasText: name });
  await expect(row).toContainText("Inactive");
  return row;
}

test("an owner activates a firewall: confirms its key, watches each step, gets the mail; a changed key quarantines it", async ({ page }) => {
  test.setTimeout(90_000);
  await signInAsDemo(page, "/devices");
  const errors = watchForErrors(page);
  const row = await addDevice(page, "e2e-journey", simBase);

  // The key first, before any password: compare, then type the password.
  await row.getByRole("button", { name: "Activate" }).click();
  const dialog = page.getByRole("dialog", { name: "Activate e2e-journey" });
  const fingerprint = dialog.getByTestId("host-key-fingerprint");
  await expect(fingerprint).toHaveText(/^SHA256:[A-Za-z0-9+/]{43}$/);
  const pinned = (await fingerprint.textContent()) ?? "";
  await expect(dialog.getByText("never stored")).toBeVisible();
  await dialog.locator('input[name="activate-password"]').fill(simPassword);
  await dialog.getByRole("button", { name: "Fingerprint matches — activate" }).click();

  // Each step ticks, then the outcome.
  const steps = dialog.getByRole("list", { name: "Activation steps" });
  await expect(steps.getByRole("listitem")).toHaveCount(6);
  await expect(dialog.getByTestId("activation-outcome")).toContainText("e2e-journey is active", { timeout: 20_000 });
  await expect(steps.locator("li.step-done")).toHaveCount(6);
  await expect(steps).toContainText(`presented the confirmed key ${pinned}`);
  await expect(steps).toContainText("pfSense CE");
  await dialog.getByRole("button", { name: "Done" }).click();

  const active = page.getByRole("table", { name: "Active devices" }).getByTestId("device-row").filter({ hasText: "e2e-journey" });
  await expect(active).toContainText("Active");
  await expect(active).toContainText("CE 2.");
  const device = await simDevice(0);
  expect(device.agent_installed && device.service_account).toBe(true);

  // The owner's mail, sent by the job queue.
  const mail = await waitForMail(DEMO_EMAIL, "e2e-journey is now managed");
  expect(mail).toContain("installed its agent");

  // The firewall presents another key: the next status poll quarantines it, naming both keys.
  await fetch(`${control}/devices/0/faults`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ host_key_changed: true, drop_connections: true }),
  });
  await expect(async () => {
    await page.reload();
    await expect(active).toContainText("Quarantined", { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  const note = active.getByTestId("quarantine-note");
  await expect(note).toContainText(`pinned ${pinned}`);
  await expect(note).toContainText(/now presents SHA256:/);
  await expect(note).not.toContainText(`now presents ${pinned}`);
  expect(errors).toEqual([]);
});

test("a wrong password gets its own message and leaves nothing on the firewall", async ({ page }) => {
  await signInAsDemo(page, "/devices");
  const row = await addDevice(page, "e2e-wrong-password", simBase + 1);
  await row.getByRole("button", { name: "Activate" }).click();
  const dialog = page.getByRole("dialog", { name: "Activate e2e-wrong-password" });
  await expect(dialog.getByTestId("host-key-fingerprint")).toHaveText(/^SHA256:/);
  await dialog.locator('input[name="activate-password"]').fill("not-the-password");
  await dialog.getByRole("button", { name: "Fingerprint matches — activate" }).click();

  const outcome = dialog.getByTestId("activation-outcome");
  await expect(outcome).toContainText('refused the password for "admin"', { timeout: 20_000 });
  await expect(outcome).toContainText("Nothing was changed on the firewall.");
  await expect(dialog.getByRole("list", { name: "Activation steps" }).locator("li.step-failed")).toContainText("Log in");
  const device = await simDevice(1);
  expect(device.agent_installed || device.service_account).toBe(false);

  // Rejecting the key stops before anything is sent.
  await dialog.getByRole("button", { name: "Start again" }).click();
  await expect(dialog.getByTestId("host-key-fingerprint")).toHaveText(/^SHA256:/);
  await dialog.getByRole("button", { name: "Fingerprint differs" }).click();
  await expect(dialog.getByRole("alert")).toContainText("you rejected the host key");
  await dialog.getByRole("button", { name: "Close" }).click();
  await expect(row).toContainText("Inactive");
});
