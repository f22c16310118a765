// PostGraphile v5 anchor: serves the generated CRUD mutations of schema.sql's tables.
// Run: node --require ./polyfill.cjs server.cjs  (PGL_DATABASE_URL, PGL_PORT, PGL_POOL)
const http = require("node:http");
const { postgraphile } = require("postgraphile");
const { PostGraphileAmberPreset } = require("postgraphile/presets/amber");
const { makePgService } = require("postgraphile/adaptors/pg");
const { grafserv } = require("postgraphile/grafserv/node");

const connectionString = process.env.PGL_DATABASE_URL;
const port = Number(process.env.PGL_PORT || 9100);
const poolSize = Number(process.env.PGL_POOL || 16);

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({ connectionString, schemas: ["app"], poolConfig: { max: poolSize } }),
  ],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};

async function main() {
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = http.createServer();
  server.on("error", (e) => {
    console.error(e);
    process.exit(1);
  });
  serv.addTo(server).catch((e) => {
    console.error(e);
    process.exit(1);
  });
  server.listen(port, "127.0.0.1", () => console.log(`postgraphile listening on 127.0.0.1:${port}`));
  const stop = () => server.close(() => pgl.release().then(() => process.exit(0)));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
