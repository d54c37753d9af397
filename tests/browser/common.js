// What both browser drivers (smart_app.js, journey.js) share: their environment, the SMART
// app's own loopback origin (app/launch.html, app/index.html and fhirclient's browser build),
// and Chromium's options.

"use strict";

const fs = require("fs");
const http = require("http");
const path = require("path");

const env = name => {
    const value = process.env[name];
    if (!value) {
        throw new Error(`${name} is not set`);
    }
    return value;
};

const FILES = {
    "/launch.html": [path.join(__dirname, "app", "launch.html"), "text/html"],
    "/index.html": [path.join(__dirname, "app", "index.html"), "text/html"],
    "/fhir-client.js": [
        require.resolve("fhirclient/build/fhir-client.js"),
        "application/javascript"
    ]
};

function serveApp(port) {
    const server = http.createServer((request, response) => {
        const file = FILES[new URL(request.url, "http://app").pathname];
        if (!file) {
            response.writeHead(404).end();
            return;
        }
        response.writeHead(200, { "content-type": file[1] });
        fs.createReadStream(file[0]).pipe(response);
    });
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => resolve(server));
    });
}

// Debian's Chromium, headless. Nothing leaves the machine: names other than loopback do not
// resolve, and whatever is not loopback goes to a proxy on a closed loopback port (Chromium
// never sends loopback through a proxy).
const CHROMIUM_OPTIONS = {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    chromiumSandbox: false,
    args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        "--proxy-server=http://127.0.0.1:9"
    ]
};

module.exports = { env, serveApp, CHROMIUM_OPTIONS };
