import { expect, test } from "@playwright/test";
import { signInAsDemo, watchForErrors } from "./helpers";

test("an owner adds a device, is told what is wrong, edits it, and deletes it after confirming", async ({ page }) => {
  await signInAsDemo(page, "/devices");
  const errors = watchForErrors(page);
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Add device" }) });
  const name = `e2e-${Date.now().toString(36)}`;

  // Wrong input: inline errors tied to their fields, nothing sent.
  await form.getByRole("textbox", { name: "Name" }).fill(name);
  await form.getByRole("textbox", { name: "Host" }).fill("https://fw.example.com/admin");
  await form.getByRole("spinbutton", { name: "SSH port" }).fill("70000");
  await form.getByRole("button", { name: "Add device" }).click();
  await expect(form.getByRole("textbox", { name: "Host" })).toHaveAttribute("aria-invalid", "true");
  await expect(form.getByText("without http://")).toBeVisible();
  await expect(form.getByText("from 1 to 65535")).toBeVisible();

  // Right input: the device appears as inactive.
  await form.getByRole("textbox", { name: "Host" }).fill("192.0.2.77");
  await form.getByRole("spinbutton", { name: "SSH port" }).fill("");
  await form.getByRole("textbox", { name: "Tags" }).fill("Acme, HQ");
  await form.getByRole("button", { name: "Add device" }).click();
  const inactive = page.getByRole("table", { name: "Inactive devices" });
  const row = inactive.getByTestId("device-row").filter({ hasText: name });
  await expect(row).toContainText("192.0.2.77");
  await expect(row).toContainText("22");
  await expect(row).toContainText("acme, hq");
  await expect(row).toContainText("Inactive");

  // The same address again is refused, naming the device that has it.
  await form.getByRole("textbox", { name: "Name" }).fill(`${name}-twin`);
  await form.getByRole("textbox", { name: "Host" }).fill("192.0.2.77");
  await form.getByRole("button", { name: "Add device" }).click();
  await expect(form.getByRole("alert")).toContainText(`${name} already uses 192.0.2.77 port 22`);

  // Edit.
  await row.getByRole("button", { name: "Edit" }).click();
  await expect(page.getByRole("heading", { name: `Edit ${name}` })).toBeVisible();
  await page.getByRole("textbox", { name: "Notes" }).fill("rack 3");
  await page.getByRole("textbox", { name: "Name" }).fill(`${name}-main`);
  await page.getByRole("button", { name: "Save" }).click();
  const renamed = inactive.getByTestId("device-row").filter({ hasText: `${name}-main` });
  await expect(renamed).toBeVisible();

  // Delete: Cancel keeps it, Delete removes it.
  await renamed.getByRole("button", { name: "Delete" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete this device?" });
  await expect(dialog).toBeVisible();
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(renamed).toBeVisible();
  await renamed.getByRole("button", { name: "Delete" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await expect(renamed).toHaveCount(0);
  // The refused duplicate shows as a 409 in the network log; nothing else failed.
  expect(errors.filter((e) => !e.includes("409"))).toEqual([]);
});
