import { expect, test } from "@playwright/test";
import { openHydrated, watchForErrors } from "./helpers";

test.beforeEach(async ({ page }) => {
  await openHydrated(page, "/design");
});

test("form fields show inline errors tied to their inputs", async ({ page }) => {
  await page.getByRole("button", { name: "Validate" }).click();
  const name = page.getByLabel("Name");
  await expect(name).toHaveAttribute("aria-invalid", "true");
  await expect(name).toHaveAccessibleDescription(/Enter a name for the device/);

  await name.fill("branch-01");
  await page.getByLabel("Host").fill("192.0.2.1");
  await page.getByRole("button", { name: "Validate" }).click();
  await expect(name).not.toHaveAttribute("aria-invalid", "true");
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText("Form is valid: branch-01");
});

test("a destructive action asks for confirmation, and Escape cancels it", async ({ page }) => {
  const errors = watchForErrors(page);
  await page.getByRole("button", { name: "Delete example" }).click();
  const dialog = page.getByRole("dialog", { name: "Delete example device?" });
  await expect(dialog).toBeVisible();
  // Cancel has focus first, so a stray Enter never confirms.
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("deleted-count")).toHaveText("Deleted: 0");

  await page.getByRole("button", { name: "Delete example" }).click();
  await dialog.getByRole("button", { name: "Delete" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByTestId("deleted-count")).toHaveText("Deleted: 1");
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText("Example deleted.");
  expect(errors).toEqual([]);
});

test("tabs move with the arrow keys", async ({ page }) => {
  const system = page.getByRole("tab", { name: "System" });
  await system.click();
  await page.keyboard.press("ArrowRight");
  const interfaces = page.getByRole("tab", { name: "Interfaces" });
  await expect(interfaces).toBeFocused();
  await expect(interfaces).toHaveAttribute("aria-selected", "true");
  await expect(page.getByRole("tabpanel", { name: "Interfaces" })).toBeVisible();
  await page.keyboard.press("End");
  await expect(page.getByRole("tab", { name: "Firewall" })).toHaveAttribute("aria-selected", "true");
  await page.keyboard.press("ArrowRight");
  await expect(system).toHaveAttribute("aria-selected", "true");
});

test("toasts can be dismissed by hand", async ({ page }) => {
  await page.getByRole("button", { name: "Show an error" }).click();
  const alert = page.getByRole("alert").filter({ hasText: "timed out" });
  await expect(alert).toBeVisible();
  await alert.getByRole("button", { name: "Dismiss notification" }).click();
  await expect(alert).toBeHidden();
});

test("every state badge has a word, not only a colour", async ({ page }) => {
  for (const state of ["Online", "Degraded", "Offline", "Quarantined", "Inactive"]) {
    await expect(page.locator(".badge", { hasText: state }).first()).toBeVisible();
  }
});
