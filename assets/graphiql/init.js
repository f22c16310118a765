// GraphiQL bootstrap. Lives in a file (not inline) so the page's CSP can be
// script-src 'self' with no 'unsafe-inline'. The endpoint comes from a data-
// attribute set by the server, so this file is the same for every page.
(function () {
  'use strict';
  var root = document.getElementById('graphiql');
  // Full-window layout via CSSOM (an inline <style> would need 'unsafe-inline').
  document.body.style.margin = '0';
  root.style.height = '100vh';
  // Subscriptions run over a websocket at the same path (graphql-transport-ws, bundled in
  // GraphiQL); the headers editor's Authorization goes in connection_init.
  var ws = new URL(root.dataset.endpoint, window.location.href);
  ws.protocol = ws.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: root.dataset.endpoint,
    subscriptionUrl: ws.href,
  });
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
