// Points Swagger UI at the server's own OpenAPI document. The URL is relative
// to /docs/ so that the page also works behind a proxy path prefix.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: new URL("../openapi.json", window.location.href).toString(),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    validatorUrl: null,
  });
});
