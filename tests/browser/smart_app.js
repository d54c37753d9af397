// Drives a SMART app built on the official `fhirclient` library through Kiln in headless
// Chromium: serves the app (app/launch.html, app/index.html and fhirclient's browser build)
// on its own loopback port, so the app's origin is not Kiln's; launches it standalone; signs
// in and allows on Kiln's pages by filling their forms; and prints, as one JSON line, what
// the app reported and what the browser sent. Run by tests/api/browser.rs.
//
// Environment: KILN_FHIR (the FHIR base), CLIENT_ID, SCOPE, APP_PORT, KILN_USERNAME,
// KILN_PASSWORD, and CHROMIUM (default /usr/bin/chromium).

"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const { env, serveApp, CHROMIUM_OPTIONS } = require("./common");

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

async function main() {
    const fhir = env("KILN_FHIR");
    const appPort = Number(env("APP_PORT"));
    const appServer = await serveApp(appPort);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "kiln-chromium-"));
    const context = await chromium.launchPersistentContext(profile, CHROMIUM_OPTIONS);
    const report = {
        app: null,
        blocked: [],
        fhirReads: [],
        refreshes: [],
        pageErrors: []
    };
    try {
        // Only loopback is reached (see the proxy arguments); anything else is reported.
        context.on("request", request => {
            const url = new URL(request.url());
            if (!LOOPBACK.has(url.hostname)) {
                report.blocked.push(url.href);
            }
        });
        context.on("requestfinished", request => record(request).catch(error => {
            report.pageErrors.push(`recording ${request.url()}: ${error}`);
        }));
        const record = async request => {
            const url = new URL(request.url());
            const response = await request.response();
            const status = response ? response.status() : 0;
            if (url.pathname.startsWith("/fhir/Patient/")) {
                const authorization = (await request.allHeaders()).authorization || "";
                report.fhirReads.push({
                    url: url.pathname,
                    status,
                    token: authorization.replace(/^Bearer /, "")
                });
            } else if (url.pathname === "/auth/token") {
                const body = new URLSearchParams(request.postData() || "");
                if (body.get("grant_type") === "refresh_token") {
                    report.refreshes.push({
                        status,
                        params: [...body.keys()].sort(),
                        authorization: Boolean((await request.allHeaders()).authorization)
                    });
                }
            }
        };
        context.on("requestfailed", request => {
            report.pageErrors.push(`request failed: ${request.method()} ${request.url()}: ${request.failure() && request.failure().errorText}`);
        });
        const page = context.pages()[0] || (await context.newPage());
        page.on("pageerror", error => report.pageErrors.push(String(error)));
        page.on("console", message => {
            if (message.type() === "error") {
                report.pageErrors.push(message.text());
            }
        });

        const launch = new URL(`http://127.0.0.1:${appPort}/launch.html`);
        launch.searchParams.set("iss", fhir);
        launch.searchParams.set("client_id", env("CLIENT_ID"));
        launch.searchParams.set("scope", env("SCOPE"));
        await page.goto(launch.href);

        // Kiln's sign-in page, then its consent page, as a person fills them.
        await page.waitForSelector("input[name=username]", { timeout: 30000 });
        await page.fill("input[name=username]", env("KILN_USERNAME"));
        await page.fill("input[name=password]", env("KILN_PASSWORD"));
        await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
        await page.waitForSelector("button[name=decision][value=allow]", { timeout: 30000 });
        await page.click("button[name=decision][value=allow]");

        await page.waitForFunction(() => window.appResult !== undefined, null, { timeout: 60000 });
        report.app = await page.evaluate(() => window.appResult);
        report.appOrigin = new URL(page.url()).origin;
    } finally {
        await context.close();
        appServer.close();
        fs.rmSync(profile, { recursive: true, force: true });
    }
    process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch(error => {
    process.stderr.write(`smart_app.js: ${error && error.stack || error}\n`);
    process.exit(1);
});
