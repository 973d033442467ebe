import { expect, test } from "@playwright/test";
import { signInAsDemo, watchForErrors } from "./helpers";

test("an admin opens Mudmap, checks the server, and sees it answer from the database", async ({ page }) => {
  await signInAsDemo(page, "/system");
  const errors = watchForErrors(page);

  await expect(page.getByRole("heading", { level: 1, name: "System" })).toBeVisible();
  await page.getByRole("button", { name: "Check server" }).click();

  const status = page.getByRole("definition").filter({ hasText: "SQLite (schema" });
  await expect(status).toBeVisible();
  await expect(page.getByText("Server reachable")).toBeVisible();
  await expect(page.getByTestId("check-count")).toHaveText("1 check");

  await page.getByRole("button", { name: "Check server" }).click();
  await expect(page.getByTestId("check-count")).toHaveText("2 checks");
  expect(errors).toEqual([]);
});

test("the main navigation reaches every section without a reload", async ({ page }) => {
  await signInAsDemo(page);
  const errors = watchForErrors(page);
  const nav = page.getByRole("navigation", { name: "Main" });
  for (const [link, heading] of [
    ["Devices", "Devices"],
    ["Changes", "Changes"],
    ["Settings", "Settings"],
    ["Fleet", "Fleet"],
  ]) {
    await nav.getByRole("link", { name: link, exact: true }).click();
    await expect(page.getByRole("heading", { level: 1, name: heading })).toBeVisible();
    await expect(nav.getByRole("link", { name: link, exact: true })).toHaveAttribute("aria-current", "page");
  }
  await expect(page).toHaveTitle("Fleet · Mudmap");
  expect(errors).toEqual([]);
});

test("an unknown address shows a helpful not-found page with status 404", async ({ page }) => {
  await signInAsDemo(page);
  const response = await page.goto("/no/such/page");
  expect(response?.status()).toBe(404);
  await expect(page.getByRole("heading", { name: "Page not found" })).toBeVisible();
});

test("signed out, every page leads to the sign-in page and back", async ({ page }) => {
  await page.goto("/settings/members");
  await expect(page).toHaveURL(/\/login\?next=\/settings\/members$/);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await expect(page.getByRole("navigation", { name: "Main" })).toHaveCount(0);
});

test("the system page reports the SSH engine's fleet on demand", async ({ page }) => {
  await signInAsDemo(page, "/system");
  // The demo's firewalls start inactive; activated ones (devices_are_activated) join the engine.
  await page.getByRole("button", { name: "Check server" }).click();
  await expect(page.getByRole("definition").filter({ hasText: /^\d+ devices?, \d+ connected$/ })).toBeVisible();
});
