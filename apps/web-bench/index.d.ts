/** The folder that holds the built page (index.html, app.js, ort/): what `alki bench --browser` serves. */
export declare const webBenchDir: string;
