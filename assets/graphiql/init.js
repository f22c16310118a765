// GraphiQL bootstrap. Lives in a file (not inline) so the page's CSP can be
// script-src 'self' with no 'unsafe-inline'. The endpoint comes from a data-
// attribute set by the server, so this file is the same for every page.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  // Full-window layout via CSSOM (an inline <style> would need 'unsafe-inline').
  document.body.style.margin = '0';
  root.style.height = '100vh';
  var fetcher = GraphiQL.createFetcher({ url: root.dataset.endpoint });
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      // Headers editor on and open, so a user can paste {"Authorization": "Bearer …"}.
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: 'headers',
      // Never write the bearer token to localStorage.
      shouldPersistHeaders: false,
    }),
  );
})();
