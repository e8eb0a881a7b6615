// scenario.mjs: @supabase/postgrest-js, unchanged, against sessiongate's data API.
//
// Usage: BASE_URL=http://127.0.0.1:PORT/api SCHEMA=clients_demo COOKIE='sessiongate=...' node scenario.mjs
// Prints one JSON object: step name -> {data, error, status}. The Python
// test (tests/clients/test_postgrest_js.py) judges each step, with the same
// expectations as the Python client's scenario.
import { PostgrestClient } from '@supabase/postgrest-js';

const client = new PostgrestClient(process.env.BASE_URL, {
  schema: process.env.SCHEMA,
  headers: { Cookie: process.env.COOKIE },
  retry: false,
});

// Reads first, then writes on rows no read depends on, so one failing step
// does not take the others down with it.
const steps = {
  select: () => client.from('projects').select('name'),
  filter: () => client.from('projects').select('name').eq('name', 'banana'),
  order: () => client.from('projects').select('name').order('name', { ascending: false }),
  embed: () => client.from('projects').select('name,tasks(title)').eq('name', 'apple'),
  rpc: () => client.rpc('projects_like', { pattern: 'b%' }),
  insert: () => client.from('projects').insert({ name: 'elder' }).select('name,owner'),
  update: () =>
    client.from('projects').update({ done: true }).eq('name', 'banana').select('name,done'),
  delete: () => client.from('projects').delete().eq('name', 'cherry').select('name'),
};

const results = {};
for (const [name, run] of Object.entries(steps)) {
  try {
    const { data, error, status } = await run();
    results[name] = { data, error: error ? JSON.stringify(error) : null, status };
  } catch (thrown) {
    results[name] = { data: null, error: String(thrown), status: null };
  }
}
process.stdout.write(JSON.stringify(results));
