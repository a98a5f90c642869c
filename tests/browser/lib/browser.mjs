// Debian's headless Chromium (/usr/bin/chromium), driven by playwright-core over the
// DevTools protocol. Playwright's own browser downloads are never used.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// The flags that work on this machine. launch() gives each browser a fresh temporary
// profile (its own --user-data-dir); each test also takes a fresh context (cookie jar).
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}
