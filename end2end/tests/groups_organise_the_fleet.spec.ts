import { expect, test } from "@playwright/test";
import { addDevice, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

test("an owner groups devices, filters the fleet by the group, renames it and deletes it; the devices stay", async ({ page }) => {
  const run = Date.now().toString(36);
  const member = `e2e-acme-hq-${run}`;
  const outsider = `e2e-other-${run}`;
  const group = `Acme ${run}`;

  // Two registered firewalls; groups do not need them activated.
  await signInAsDemo(page, "/devices");
  const errors = watchForErrors(page);
  await addDevice(page, member, "198.51.100.21", 22);
  await addDevice(page, outsider, "198.51.100.22", 22);

  // A group needs a name; the rule is checked before anything is sent.
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Groups", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Groups" })).toBeVisible();
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Create group" }) });
  await form.getByRole("button", { name: "Create group" }).click();
  await expect(form.getByRole("textbox", { name: "Name" })).toHaveAttribute("aria-invalid", "true");
  await expect(form.getByText("Give the group a name")).toBeVisible();

  // Created, it opens at once for ticking its devices.
  await form.getByRole("textbox", { name: "Name" }).fill(group);
  await form.getByRole("button", { name: "Create group" }).click();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText(`Group ${group} created.`);
  const row = page.getByRole("table", { name: "Groups" }).getByTestId("group-row").filter({ hasText: group });
  await expect(row.getByRole("cell").nth(1)).toHaveText("0");
  const editor = page.getByTestId("group-editor");
  await expect(editor.getByRole("heading", { name: `Devices in ${group}` })).toBeVisible();
  const checklist = editor.getByRole("list", { name: "Devices of the group" });
  await checklist.getByRole("checkbox", { name: member }).check();
  await expect(row.getByRole("cell").nth(1)).toHaveText("1");

  // The tick was saved: after a reload the group still holds the device, and only it.
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  await row.getByRole("button", { name: "Devices and name" }).click();
  await expect(checklist.getByRole("checkbox", { name: member })).toBeChecked();
  await expect(checklist.getByRole("checkbox", { name: outsider })).not.toBeChecked();

  // The fleet page's group filter narrows the table to the group's device (inactive, as registered).
  await nav.getByRole("link", { name: "Fleet", exact: true }).click();
  const fleet = page.getByRole("table", { name: "Fleet" });
  await expect(fleet.getByTestId("fleet-row").filter({ hasText: outsider })).toBeVisible();
  await page.getByRole("combobox", { name: "Filter by group" }).selectOption({ label: `${group} (1)` });
  await expect(fleet.getByTestId("fleet-row")).toHaveCount(1);
  await expect(fleet.getByTestId("fleet-row")).toContainText(member);
  await expect(fleet.getByTestId("fleet-row")).toContainText("Inactive");
  await expect(page.getByRole("status").filter({ hasText: "1–1 of 1" })).toBeVisible();

  // Renamed, the group keeps its device.
  await nav.getByRole("link", { name: "Groups", exact: true }).click();
  await row.getByRole("button", { name: "Devices and name" }).click();
  await editor.getByRole("textbox", { name: "Group name" }).fill(`${group} HQ`);
  await editor.getByRole("button", { name: "Rename" }).click();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText(`Renamed to ${group} HQ.`);
  const renamed = page.getByRole("table", { name: "Groups" }).getByTestId("group-row").filter({ hasText: `${group} HQ` });
  await expect(renamed.getByRole("cell").first()).toHaveText(`${group} HQ`);
  await expect(renamed.getByRole("cell").nth(1)).toHaveText("1");

  // Deleted after confirming: Cancel keeps it, "Delete group" removes it.
  await renamed.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete this group?" });
  await expect(dialog).toContainText(`The group ${group} HQ goes; its 1 devices stay as they are.`);
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(renamed).toBeVisible();
  await renamed.getByRole("button", { name: "Delete" }).click();
  await dialog.getByRole("button", { name: "Delete group" }).click();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText("Group deleted. Its devices are unchanged.");
  await expect(renamed).toHaveCount(0);
  await expect(editor).toHaveCount(0);

  // Both devices are still registered, and the fleet no longer offers the group.
  await nav.getByRole("link", { name: "Devices", exact: true }).click();
  const inactive = page.getByRole("table", { name: "Inactive devices" });
  await expect(inactive.getByTestId("device-row").filter({ hasText: member })).toBeVisible();
  await expect(inactive.getByTestId("device-row").filter({ hasText: outsider })).toBeVisible();
  await openHydrated(page, "/");
  await expect(fleet.getByTestId("fleet-row").filter({ hasText: member })).toBeVisible();
  await expect(page.getByRole("combobox", { name: "Filter by group" }).getByRole("option", { name: group })).toHaveCount(0);
  expect(errors).toEqual([]);
});
