import { expect, test } from "@playwright/test";
import { addActiveDevice, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

// The `mudmap sim --fresh` fleet of playwright.config.ts; this test owns its device 6.
const simBase = Number(process.env.MUDMAP_E2E_SIM_BASE);

test("an owner searches the fleet's configurations by structured filters, shares the search as a link, and is told plainly when a filter is wrong", async ({ page }) => {
  test.setTimeout(60_000);
  await signInAsDemo(page, "/devices");
  // Activated: its configuration is backed up a moment later, and searchable from then on.
  await addActiveDevice(page, "e2e-search", simBase + 6);
  const errors = watchForErrors(page);
  await openHydrated(page, "/search");
  const form = page.getByRole("form", { name: "Search the fleet" });
  const results = page.getByRole("table", { name: "Search results" });

  // Every firewall has pfSense's admin user. (Other journeys activate firewalls in the same
  // organisation meanwhile: this one's is among the results.)
  await form.getByLabel("Field 1").selectOption("user.name");
  await form.getByLabel("Value 1").fill("admin");
  const ours = results.getByTestId("search-hit").filter({ hasText: "e2e-search" });
  await expect(async () => {
    await form.getByRole("button", { name: "Search" }).click();
    await expect(page.getByTestId("search-summary")).toBeVisible({ timeout: 2_000 });
    await expect(ours).toHaveCount(1, { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page).toHaveURL(/\/search\?q=user\.name%20is%20admin$/);
  await expect(ours).toContainText("user admin (System Administrator)");
  await expect(page.getByTestId("search-summary")).toContainText(/on \d+ firewall\(s\)/);

  // Several filters on rules hold for the same rule; the URL carries the whole search.
  await page.getByRole("link", { name: "Rules that pass port 22 from any" }).click();
  await expect(form.getByTestId("filter-row")).toHaveCount(3);
  await expect(form.getByLabel("Value 3")).toHaveValue("22");
  await expect(page).toHaveURL(/\?q=rule\.action%20is%20pass%0Arule\.source%20is%20any%0Arule\.port%20is%2022$/);
  // The previous results give way to the new ones.
  await expect(results.getByTestId("search-hit").filter({ hasText: "user admin" })).toHaveCount(0);
  await expect(page.getByTestId("search-summary")).toBeVisible();
  for (const label of await results.getByTestId("search-hit").allInnerTexts()) {
    expect(label).toMatch(/pass .* from any/);
  }

  // A wrong value is refused (422) with the field named, and nothing else happens.
  expect(errors).toEqual([]);
  await form.getByLabel("Value 3").fill("ssh");
  await form.getByRole("button", { name: "Search" }).click();
  await expect(page.getByRole("alert")).toContainText("rule.port takes a port (0–65535) or a range such as 8000-8080, not \"ssh\"");
  expect(errors.filter((e) => !e.includes("422"))).toEqual([]);
  errors.length = 0;

  // A result opens its firewall at the section it lives in.
  await openHydrated(page, "/search?q=user.name%20is%20admin");
  await ours.getByRole("link").click();
  await expect(page).toHaveURL(/\/devices\/[^?]+\?tab=system$/);
  await expect(page.getByRole("tab", { name: "System" })).toHaveAttribute("aria-selected", "true");
  expect(errors).toEqual([]);
});
