import * as fs from "node:fs";
import * as path from "node:path";
import { expect, type Page } from "@playwright/test";

/** Open a page and wait until the WASM front end has hydrated it. */
export async function openHydrated(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Collect console errors and failed requests, to assert a clean page at the end. */
export function watchForErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`page: ${err.message}`));
  page.on("response", (res) => {
    if (res.status() >= 400) errors.push(`http ${res.status()}: ${res.url()}`);
  });
  return errors;
}

export const DEMO_EMAIL = "demo@mudmap.test";

/** Sign in through the sign-in page and wait for the fleet page. */
export async function signIn(page: Page, email: string, password: string, next = "/"): Promise<void> {
  await openHydrated(page, next === "/" ? "/login" : `/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => url.pathname === next.split("?")[0]);
  await expect(page.locator("body")).toHaveAttribute("data-hydrated", "true");
}

/** Sign in as the demo account the server creates for its demo fleet. */
export async function signInAsDemo(page: Page, next = "/"): Promise<void> {
  await signIn(page, DEMO_EMAIL, process.env.MUDMAP_E2E_DEMO_PASSWORD ?? "", next);
}

/** The decoded text of a raw message: every MIME part, quoted-printable and base64 undone. */
function decodeMessage(raw: string): string {
  const out: string[] = [];
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1];
  const parts = boundary ? raw.split(`--${boundary}`) : [raw];
  for (const part of parts) {
    const split = part.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const headers = part.slice(0, split);
    const body = part.slice(split).trim();
    const encoding = /content-transfer-encoding:\s*([\w-]+)/i.exec(headers)?.[1]?.toLowerCase();
    if (encoding === "base64") {
      out.push(Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8"));
    } else if (encoding === "quoted-printable") {
      out.push(
        body
          .replace(/=\r?\n/g, "")
          .replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
      );
    } else {
      out.push(body);
    }
  }
  return out.join("\n");
}

/** Wait for a mail to `to` whose subject contains `subject`; returns its decoded text. */
export async function waitForMail(to: string, subject: string): Promise<string> {
  const dir = process.env.MUDMAP_E2E_MAIL_DIR ?? "";
  let found = "";
  await expect(async () => {
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith(".eml"))) {
      const raw = fs.readFileSync(path.join(dir, name), "utf8");
      const head = raw.slice(0, raw.search(/\r?\n\r?\n/));
      const toLine = /^to:.*$/im.exec(head)?.[0] ?? "";
      const subjectLine = /^subject:.*$/im.exec(head)?.[0] ?? "";
      if (toLine.includes(to) && subjectLine.toLowerCase().includes(subject.toLowerCase())) {
        found = decodeMessage(raw);
        return;
      }
    }
    throw new Error(`no mail to ${to} about "${subject}" yet`);
  }).toPass({ timeout: 20_000 });
  return found;
}

/** The first link in `text` that goes to `pathname`. */
export function linkTo(text: string, pathname: string): string {
  const match = new RegExp(`https?://[^\\s"<>]*${pathname}\\?token=[A-Za-z0-9._~%-]+`).exec(text);
  if (!match) throw new Error(`no ${pathname} link in: ${text}`);
  return match[0];
}

/** On /devices: register a firewall with the add form; returns its row in the Inactive table. */
export async function addDevice(page: Page, name: string, host: string, port: number) {
  const form = page.locator("form").filter({ has: page.getByRole("button", { name: "Add device" }) });
  await form.getByRole("textbox", { name: "Name" }).fill(name);
  await form.getByRole("textbox", { name: "Host" }).fill(host);
  await form.getByRole("spinbutton", { name: "SSH port" }).fill(String(port));
  await form.getByRole("button", { name: "Add device" }).click();
  const row = page.getByRole("table", { name: "Inactive devices" }).getByTestId("device-row").filter({ hasText: name });
  await expect(row).toContainText("Inactive");
  return row;
}

/** On /devices: register simulated firewall `port` and activate it (key confirmed, sim password). */
export async function addActiveDevice(page: Page, name: string, port: number) {
  const row = await addDevice(page, name, "127.0.0.1", port);
  await row.getByRole("button", { name: "Activate" }).click();
  const dialog = page.getByRole("dialog", { name: `Activate ${name}` });
  await expect(dialog.getByTestId("host-key-fingerprint")).toHaveText(/^SHA256:/);
  await dialog.locator('input[name="activate-password"]').fill(process.env.MUDMAP_E2E_SIM_PASSWORD ?? "");
  await dialog.getByRole("button", { name: "Fingerprint matches — activate" }).click();
  await expect(dialog.getByTestId("activation-outcome")).toContainText("is active", { timeout: 20_000 });
  await dialog.getByRole("button", { name: "Done" }).click();
  const active = page.getByRole("table", { name: "Active devices" }).getByTestId("device-row").filter({ hasText: name });
  await expect(active).toContainText("Active");
  return active;
}
