// A developer's whole journey through Kiln's pages in headless Chromium, as people click
// them: sign-up, the verification link from the mail the SMTP sink caught, sign-in, an app
// registered in the form (logo upload included), an admin (a second browser context)
// requesting changes, the developer resubmitting, the admin approving; then the app
// (tests/browser/app, fhirclient, on its own loopback origin) launched from the simulator
// as the practitioner persona and standalone as the patient persona, reading and
// refreshing; finally the admin suspending the app and its token refused. A screenshot of
// every page goes to SCREENSHOTS. Prints, as one JSON line, what it saw. Run by
// tests/api/browser.rs.
//
// Environment: KILN_BASE, KILN_FHIR, APP_PORT, MAILBOX (the sink's JSON-lines file),
// EMAIL, ADMIN_USERNAME, ADMIN_PASSWORD, LOGO (a PNG file), SCREENSHOTS (a directory),
// CHROMIUM (default /usr/bin/chromium).

"use strict";

const fs = require("fs");
const path = require("path");
const { chromium } = require("playwright-core");

const { env, serveApp, CHROMIUM_OPTIONS } = require("./common");

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

/// The verification link in the first mail to `to` the sink caught (waits up to 15 s).
async function verificationLink(mailbox, to) {
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline) {
        const text = fs.existsSync(mailbox) ? fs.readFileSync(mailbox, "utf8") : "";
        for (const line of text.split("\n").filter(Boolean)) {
            const mail = JSON.parse(line);
            if ((mail.to || []).includes(to)) {
                const found = /https?:\/\/[^\s/]+\/developer\/verify\?token=[A-Za-z0-9_-]+/.exec(mail.body);
                if (found) {
                    return found[0];
                }
            }
        }
        await sleep(100);
    }
    throw new Error(`no verification mail to ${to}`);
}

const SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs";
const EHR_SCOPE = `launch ${SCOPE}`;
const LAUNCH_TIMEOUT = 30000;

async function main() {
    const base = env("KILN_BASE");
    const fhir = env("KILN_FHIR");
    const appPort = Number(env("APP_PORT"));
    const appOrigin = `http://127.0.0.1:${appPort}`;
    const email = env("EMAIL");
    const shots = env("SCREENSHOTS");
    fs.mkdirSync(shots, { recursive: true });
    const appServer = await serveApp(appPort);
    const browser = await chromium.launch(CHROMIUM_OPTIONS);
    const report = { steps: [], screenshots: [], statuses: [], pageErrors: [] };
    let shot = 0;
    const snap = async (page, name) => {
        shot += 1;
        const file = path.join(shots, `${String(shot).padStart(2, "0")}-${name}.png`);
        await page.screenshot({ path: file, fullPage: true });
        report.screenshots.push(file);
    };
    const open = async context => {
        const page = await context.newPage();
        page.on("pageerror", error => report.pageErrors.push(String(error)));
        return page;
    };
    const submit = async (page, selector) => {
        await Promise.all([page.waitForNavigation(), page.click(selector)]);
    };
    const status = async page => (await page.textContent("span.status")).trim();
    try {
        // 1. Sign-up, the mailed link, sign-in.
        const developer = await browser.newContext();
        report.launches = [];
        developer.on("request", request => {
            if (request.url().startsWith(`${appOrigin}/launch.html`)) {
                report.launches.push(request.url());
            }
        });
        const dev = await open(developer);
        await dev.goto(`${base}/developer/signup`);
        await snap(dev, "signup");
        await dev.fill("#name", "Ada Developer");
        await dev.fill("#organization", "Acme Health");
        await dev.fill("#email", email);
        await dev.fill("#password", "Correct-horse-battery1");
        await dev.fill("#confirm", "Correct-horse-battery1");
        await submit(dev, "form[action='/developer/signup'] button[type=submit]");
        await snap(dev, "signup-done");
        const link = await verificationLink(env("MAILBOX"), email);
        report.verificationLink = link;
        await dev.goto(link);
        report.verifiedPage = await dev.textContent("main");
        await snap(dev, "verified");
        await dev.goto(`${base}/developer/signin`);
        await dev.fill("#email", email);
        await dev.fill("#password", "Correct-horse-battery1");
        await submit(dev, "form[action='/developer/signin'] button[type=submit]");
        report.homeUrl = dev.url();
        await snap(dev, "home");
        report.personas = await dev.$$eval("tr", rows => rows
            .filter(row => row.querySelector("code.persona-username"))
            .map(row => ({
                kind: row.cells[0].textContent.trim().toLowerCase(),
                username: row.querySelector("code.persona-username").textContent.trim(),
                password: row.querySelector("code.persona-password").textContent.trim()
            })));
        report.steps.push("signed-in");

        // 2. The app registered in the form.
        await dev.goto(`${base}/developer/apps/new`);
        await dev.fill("#name", "Journey Labs");
        await dev.fill("#description", "Shows patients their lab results");
        await dev.setInputFiles("#logo_file", env("LOGO"));
        await dev.check("input[name=audience][value=patient]");
        await dev.fill("#purpose", "Shows patients their lab results");
        await dev.fill("#intended_users", "Patients of the clinic");
        await dev.fill("#sites", "Main Street clinic");
        await dev.fill("#contact_name", "Ada");
        await dev.fill("#contact_email", email);
        await dev.fill("#app_url", `${appOrigin}/index.html`);
        await dev.fill("#privacy_url", `${appOrigin}/privacy.html`);
        await dev.check("input[name=client_type][value=public]");
        await dev.fill("#redirect_uris", `${appOrigin}/index.html`);
        await dev.fill("#launch_url", `${appOrigin}/launch.html`);
        await dev.check("input[name=refresh_tokens][value=yes]");
        await dev.check("input[name=scope_version][value=v2]");
        for (const scope of EHR_SCOPE.split(" ")) {
            const box = await dev.$(`input[type=checkbox][name=scopes][value="${scope}"]`);
            if (box) {
                await box.check();
            } else {
                const extra = await dev.inputValue("#extra_scopes");
                await dev.fill("#extra_scopes", `${extra} ${scope}`.trim());
            }
        }
        await dev.check("input[name=accepted_terms]");
        await snap(dev, "app-form");
        await submit(dev, "button[name=intent][value=submit]");
        const appId = (/\/developer\/apps\/([0-9a-f-]{36})/.exec(dev.url()) || [])[1];
        const appUrl = `${base}/developer/apps/${appId}`;
        if (!appId) {
            await snap(dev, "app-form-refused");
            throw new Error(`the form was not accepted: ${await dev.textContent("main")}`);
        }
        report.appId = appId;
        report.statuses.push(await status(dev));
        report.logoShown = Boolean(await dev.$("img[src^='/apps/logo/']"));
        await snap(dev, "app-pending");
        report.steps.push("submitted");

        // 3. The admin, in a browser context of its own, requests changes.
        const adminContext = await browser.newContext();
        const admin = await open(adminContext);
        await admin.goto(`${base}/admin`);
        await admin.waitForSelector("input[name=username]");
        await snap(admin, "admin-login");
        await admin.fill("input[name=username]", env("ADMIN_USERNAME"));
        await admin.fill("input[name=password]", env("ADMIN_PASSWORD"));
        await submit(admin, "button[type=submit]");
        await snap(admin, "admin-home");
        await admin.goto(`${base}/admin/apps/${appId}`);
        await snap(admin, "admin-app");
        const reason = "Please describe how long lab results are kept.";
        await admin.fill("form[aria-label='Request changes'] textarea[name=reason]", reason);
        await submit(admin, "form[aria-label='Request changes'] button[type=submit]");
        await snap(admin, "admin-changes-requested");

        // 4. The developer sees the reason, edits, resubmits; the admin approves.
        await dev.goto(appUrl);
        report.statuses.push(await status(dev));
        report.reasonShown = (await dev.textContent("p.reason") || "").trim();
        await snap(dev, "app-changes-requested");
        await dev.goto(`${appUrl}/edit`);
        await dev.fill("#description", "Shows patients their lab results; keeps nothing after sign-out.");
        await snap(dev, "app-edit");
        await submit(dev, "button[name=intent][value=submit]");
        if (!dev.url().startsWith(appUrl)) {
            throw new Error(`resubmitting failed: ${await dev.textContent("main")}`);
        }
        await dev.goto(appUrl);
        report.statuses.push(await status(dev));
        await snap(dev, "app-resubmitted");
        await admin.goto(`${base}/admin/apps/${appId}`);
        await admin.fill("form[aria-label=Approve] textarea[name=reason]", "Looks good.");
        await submit(admin, "form[aria-label=Approve] button[type=submit]");
        await snap(admin, "admin-approved");
        report.steps.push("approved");

        // 5. The client id on the app page (a public app: no secret to generate).
        await dev.goto(appUrl);
        report.statuses.push(await status(dev));
        report.clientId = (await dev.textContent("#client-id")).trim();
        report.secretButton = Boolean(await dev.$("form[action$='/secret']"));
        await snap(dev, "app-active");
        const clientId = report.clientId;
        const config = { clientId, scope: SCOPE, ehrScope: EHR_SCOPE };
        await developer.addInitScript(value => { window.appConfig = value; }, config);

        // 6a. EHR launch from the simulator as the practitioner persona.
        const practitioner = report.personas.find(p => p.kind.includes("practitioner"));
        const patient = report.personas.find(p => !p.kind.includes("practitioner"));
        await dev.goto(`${base}/developer/simulator?client=${encodeURIComponent(clientId)}`);
        await snap(dev, "simulator");
        const chosen = await dev.$eval("a[href*='patient=']", a =>
            new URL(a.href).searchParams.get("patient"));
        report.chosenPatient = chosen;
        await dev.goto(`${base}/developer/simulator?client=${encodeURIComponent(clientId)}&patient=${encodeURIComponent(chosen)}`);
        await snap(dev, "simulator-patient");
        await dev.click("button[name=mode][value=ehr]");
        report.ehr = await signInAndAllow(dev, practitioner, snap, "ehr");
        report.ehrLaunchUrl = report.ehr.launchUrl;
        report.steps.push("ehr-launch");

        // 6b. Standalone launch as the patient persona, in a fresh context.
        const patientContext = await browser.newContext();
        await patientContext.addInitScript(value => { window.appConfig = value; }, config);
        const pat = await open(patientContext);
        const launch = new URL(`${appOrigin}/launch.html`);
        launch.searchParams.set("iss", fhir);
        await pat.goto(launch.href);
        report.standalone = await signInAndAllow(pat, patient, snap, "standalone");
        report.patientPersona = patient.username;
        report.steps.push("standalone-launch");

        // 7. The admin suspends the app; its token is refused.
        await admin.goto(`${base}/admin/apps/${appId}`);
        await snap(admin, "admin-app-active");
        await admin.fill("form[aria-label=Suspend] textarea[name=reason]", "Reported misuse.");
        await submit(admin, "form[aria-label=Suspend] button[type=submit]");
        await snap(admin, "admin-suspended");
        await dev.goto(appUrl);
        report.statuses.push(await status(dev));
        report.suspensionShown = (await dev.textContent("p.reason") || "").trim();
        await snap(dev, "app-suspended");
        const token = report.standalone.app.tokenAfter;
        const read = await fetch(`${fhir}/Patient/${report.standalone.app.patient}`, {
            headers: { authorization: `Bearer ${token}`, accept: "application/fhir+json" }
        });
        report.readAfterSuspension = read.status;
        report.steps.push("suspended");
    } catch (error) {
        report.error = String(error && error.stack || error);
    } finally {
        await browser.close();
        appServer.close();
    }
    process.stdout.write(JSON.stringify(report) + "\n");
}

/// Kiln's login (when it asks) as `persona`, then its consent page, then the app's result.
async function signInAndAllow(page, persona, snap, name) {
    const first = await page.waitForSelector(
        "input[name=username], button[name=decision][value=allow]",
        { timeout: LAUNCH_TIMEOUT });
    const launchUrl = page.url();
    if (await first.getAttribute("name") === "username") {
        await snap(page, `${name}-login`);
        await page.fill("input[name=username]", persona.username);
        await page.fill("input[name=password]", persona.password);
        await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    }
    await page.waitForSelector("button[name=decision][value=allow]", { timeout: LAUNCH_TIMEOUT });
    await snap(page, `${name}-consent`);
    await page.click("button[name=decision][value=allow]");
    await page.waitForFunction(() => window.appResult !== undefined, null, { timeout: 60000 });
    await snap(page, `${name}-app`);
    return {
        launchUrl,
        appOrigin: new URL(page.url()).origin,
        app: await page.evaluate(() => window.appResult)
    };
}

main().catch(error => {
    process.stderr.write(`journey.js: ${error && error.stack || error}\n`);
    process.exit(1);
});
