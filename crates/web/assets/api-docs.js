// Renders /api/openapi.json with the vendored Swagger UI. No validator
// badge: that would ask a server elsewhere to check the document.
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
