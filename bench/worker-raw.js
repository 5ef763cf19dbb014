// Cold-start baseline: the same request with the runtime's fetch alone.
export default {
  async fetch(_request, env) {
    const r = await fetch(`${env.MOCK_URL}/v1/models`, { headers: { authorization: `Bearer ${env.KEY}` } });
    return Response.json(await r.json());
  },
};
