import { expect, test } from "@playwright/test";
import { addActiveDevice, linkTo, openHydrated, signInAsDemo, waitForMail, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 3.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);
const control = `http://${process.env.MUDMAP_E2E_SIM_CONTROL}`;

test("a viewer reads devices, services and groups without a single control, and the server refuses them too", async ({
  page,
  browser,
}) => {
  test.setTimeout(90_000);
  const run = Date.now().toString(36);
  const viewer = `viewer-${run}@example.com`;
  const group = `Viewed ${run}`;

  // The owner: an active firewall, a group holding it, and an invitation to a viewer.
  await signInAsDemo(page, "/devices");
  await addActiveDevice(page, "e2e-viewed", simBase + 3);
  await openHydrated(page, "/groups");
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Create group" }) });
  await form.getByRole("textbox", { name: "Name" }).fill(group);
  await form.getByRole("button", { name: "Create group" }).click();
  const groupRow = page.getByRole("table", { name: "Groups" }).getByTestId("group-row").filter({ hasText: group });
  await page.getByTestId("group-editor").getByRole("checkbox", { name: "e2e-viewed" }).check();
  await expect(groupRow.getByRole("cell").nth(1)).toHaveText("1");
  await openHydrated(page, "/settings/members");
  await page.getByRole("textbox", { name: "Email", exact: true }).fill(viewer);
  await page.getByLabel("Role", { exact: true }).selectOption("viewer");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText(`Invitation sent to ${viewer}`);

  // The viewer joins through the mailed link, in their own browser.
  const invitation = await waitForMail(viewer, "invit");
  const theirs = await browser.newContext();
  const them = await theirs.newPage();
  await openHydrated(them, linkTo(invitation, "/invite"));
  await expect(them.getByTestId("invitation-summary")).toContainText("as Viewer");
  await them.getByLabel("Choose a password").fill("plover-granite-tundra-42");
  await them.getByRole("button", { name: "Create account and join" }).click();
  await them.waitForURL((url) => url.pathname === "/");
  await expect(them.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(them.getByLabel("Organisation")).toContainText("Demo MSP (Viewer)");
  const errors = watchForErrors(them);

  // The fleet shows the firewall online.
  const fleetRow = them.getByRole("table", { name: "Fleet" }).getByTestId("fleet-row").filter({ hasText: "e2e-viewed" });
  await expect(fleetRow).toContainText("Online", { timeout: 15_000 });
  const deviceId = (await fleetRow.getAttribute("data-device")) ?? "";
  expect(deviceId).not.toBe("");

  // Devices: the list, but no form to add one and no button on any row.
  const nav = them.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Devices", exact: true }).click();
  const active = them.getByRole("table", { name: "Active devices" }).getByTestId("device-row").filter({ hasText: "e2e-viewed" });
  await expect(active).toContainText("Active");
  await expect(them.getByRole("heading", { name: "Add a device" })).toHaveCount(0);
  for (const label of ["Add device", "Activate", "Re-activate", "Edit", "Delete"]) {
    await expect(them.getByRole("button", { name: label, exact: true })).toHaveCount(0);
  }

  // The device page: services without Start, Stop or Restart; diagnostics without power buttons.
  await openHydrated(them, `/devices/${deviceId}`);
  await expect(them.getByRole("heading", { level: 1, name: "e2e-viewed" })).toBeVisible();
  await them.getByRole("tab", { name: "Services" }).click();
  const services = them.getByRole("table", { name: "Services" });
  await expect(services.getByTestId("service-row").filter({ hasText: "unbound" })).toContainText("running");
  await expect(services.getByRole("button")).toHaveCount(0);
  await them.getByRole("tab", { name: "Diagnostics" }).click();
  await expect(them.getByRole("tabpanel", { name: "Diagnostics" })).toContainText("Ping, traceroute");
  await expect(them.getByRole("button", { name: "Reboot…" })).toHaveCount(0);
  await expect(them.getByRole("button", { name: "Shut down…" })).toHaveCount(0);

  // Groups: the group and its device, read-only.
  await nav.getByRole("link", { name: "Groups", exact: true }).click();
  const theirRow = them.getByRole("table", { name: "Groups" }).getByTestId("group-row").filter({ hasText: group });
  await expect(theirRow.getByRole("cell").nth(1)).toHaveText("1");
  await expect(them.getByRole("heading", { name: "New group" })).toHaveCount(0);
  await expect(them.getByRole("button", { name: "Create group" })).toHaveCount(0);
  await expect(them.getByRole("button", { name: "Delete", exact: true })).toHaveCount(0);
  await expect(them.getByRole("button", { name: "Devices and name" })).toHaveCount(0);
  await theirRow.getByRole("button", { name: "Devices", exact: true }).click();
  const editor = them.getByTestId("group-editor");
  const box = editor.getByRole("list", { name: "Devices of the group" }).getByRole("checkbox", { name: "e2e-viewed" });
  await expect(box).toBeChecked();
  await expect(box).toBeDisabled();
  await expect(editor.getByRole("textbox", { name: "Group name" })).toHaveCount(0);
  expect(errors).toEqual([]);

  // Called directly from the viewer's page (same origin, their session), the server refuses each
  // action with 403, and the firewall's service keeps running.
  const refused = await them.evaluate(async (id) => {
    const post = async (path: string, fields: Record<string, string>) =>
      (
        await fetch(path, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(fields),
        })
      ).status;
    return [
      await post("/api/devices/service", { id, service: "unbound", action: "stop" }),
      await post("/api/devices/power", { id, action: "reboot", confirm: "e2e-viewed" }),
      await post("/api/groups/create", { name: "Not allowed" }),
    ];
  }, deviceId);
  expect(refused).toEqual([403, 403, 403]);
  const sim = (await (await fetch(`${control}/devices`)).json()) as { devices: { services_running: Record<string, boolean> }[] };
  expect(sim.devices[3].services_running.unbound).toBe(true);
  await theirs.close();
});
