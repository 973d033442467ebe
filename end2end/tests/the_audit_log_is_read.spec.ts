import { expect, test } from "@playwright/test";
import { DEMO_EMAIL, openHydrated, signInAsDemo, watchForErrors } from "./helpers";

test("an owner reads the organisation's audit log: sign-ins are in it, filters narrow it, and it exports as CSV", async ({ page }) => {
  test.setTimeout(60_000);
  await signInAsDemo(page, "/");
  const errors = watchForErrors(page);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const filters = page.getByRole("form", { name: "Filter the audit log" });
  const entries = page.getByRole("table", { name: "Audit entries" }).getByTestId("audit-entry");
  await expect(entries.first()).toBeVisible();

  // The sign-in just made is recorded, with who made it.
  await filters.getByLabel("Action").selectOption({ label: "Sign-ins and accounts" });
  await filters.getByRole("button", { name: "Show" }).click();
  await expect(entries.first()).toContainText("account.signed_in");
  await expect(entries.first()).toContainText(DEMO_EMAIL);
  // Every entry shown is an account event once the filtered page has replaced the first one.
  await expect(async () => {
    for (const text of await entries.allInnerTexts()) {
      expect(text).toContain("account.");
    }
  }).toPass({ timeout: 10_000 });

  // Somebody who did nothing here: no entries, said plainly.
  await filters.getByLabel("Who").fill("nobody-did-this");
  await filters.getByRole("button", { name: "Show" }).click();
  await expect(page.getByTestId("audit-empty")).toHaveText("No entries match these filters.");

  // Everything, as CSV.
  await filters.getByLabel("Who").fill("");
  await filters.getByLabel("Action").selectOption({ label: "Every action" });
  await filters.getByRole("button", { name: "Show" }).click();
  await expect(entries.first()).toBeVisible();
  const download = page.waitForEvent("download");
  await filters.getByRole("button", { name: "Export CSV" }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^audit-\d{8}-\d{6}\.csv$/);
  const { readFileSync } = await import("node:fs");
  const csv = readFileSync(await file.path(), "utf8");
  expect(csv.startsWith("time (UTC),actor,action,subject,detail\r\n")).toBe(true);
  expect(csv).toContain(`,${DEMO_EMAIL},account.signed_in,`);
  await expect(page.getByText(/^Exported \d+ entries\.$/)).toBeVisible();

  // The export itself is on the record.
  await openHydrated(page, "/audit");
  await expect(entries.filter({ hasText: "audit.exported" }).first()).toBeVisible();
  expect(errors).toEqual([]);
});
