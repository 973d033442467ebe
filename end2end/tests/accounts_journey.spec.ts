import { expect, test } from "@playwright/test";
import { linkTo, openHydrated, signIn, waitForMail, watchForErrors } from "./helpers";

const PASSWORD = "plover-granite-tundra-42";

test("a new owner registers, confirms by mail, invites a colleague who joins with the invited role", async ({
  page,
  browser,
}) => {
  test.setTimeout(60_000);
  const run = Date.now().toString(36);
  const owner = `owner-${run}@example.com`;
  const colleague = `colleague-${run}@example.com`;
  const org = `Journey MSP ${run}`;

  // Register.
  await openHydrated(page, "/register");
  await page.getByLabel("Email").fill(owner);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByLabel("Organisation").fill(org);
  await page.getByRole("button", { name: "Create account" }).click();
  await expect(page.getByRole("status")).toContainText(`We sent a link to ${owner}`);

  // Open the verification link from the mail that arrived over SMTP.
  const verification = await waitForMail(owner, "Confirm");
  await openHydrated(page, linkTo(verification, "/verify-email"));
  await expect(page.getByText(`${owner} is confirmed`)).toBeVisible();

  // Sign in: the owner lands in the new organisation.
  await signIn(page, owner, PASSWORD);
  await expect(page.getByTestId("user-email")).toHaveText(owner);
  await expect(page.getByLabel("Organisation")).toContainText(`${org} (Owner)`);

  // Invite a colleague as operator.
  await openHydrated(page, "/settings/members");
  const errors = watchForErrors(page);
  await page.getByRole("textbox", { name: "Email", exact: true }).fill(colleague);
  await page.getByLabel("Role", { exact: true }).selectOption("operator");
  await page.getByRole("button", { name: "Send invitation" }).click();
  await expect(page.getByRole("region", { name: "Notifications" })).toContainText(`Invitation sent to ${colleague}`);
  await expect(page.getByRole("table", { name: "Pending invitations" })).toContainText(colleague);

  // The colleague opens the invitation in their own browser and registers through it.
  const invitation = await waitForMail(colleague, "invit");
  const theirs = await browser.newContext();
  const them = await theirs.newPage();
  await openHydrated(them, linkTo(invitation, "/invite"));
  await expect(them.getByTestId("invitation-summary")).toContainText(`join ${org} as Operator`);
  await them.getByLabel("Choose a password").fill(PASSWORD);
  await them.getByRole("button", { name: "Create account and join" }).click();
  await them.waitForURL((url) => url.pathname === "/");
  await expect(them.locator("body")).toHaveAttribute("data-hydrated", "true");
  await expect(them.getByLabel("Organisation")).toContainText(`${org} (Operator)`);
  await expect(them.getByTestId("user-email")).toHaveText(colleague);
  await theirs.close();

  // The owner sees them in the member table with the invited role.
  await page.reload();
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
  const row = page.getByTestId("member-row").filter({ hasText: colleague });
  await expect(row).toBeVisible();
  await expect(row.getByRole("combobox")).toHaveValue("operator");
  await expect(page.getByRole("table", { name: "Pending invitations" })).toHaveCount(0);
  expect(errors).toEqual([]);
});

test("a wrong password says so, and the page stays usable", async ({ page }) => {
  await openHydrated(page, "/login");
  await page.getByLabel("Email").fill("demo@mudmap.test");
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("do not match");
  await expect(page).toHaveURL(/\/login$/);
});
