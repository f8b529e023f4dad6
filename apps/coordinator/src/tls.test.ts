import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTabularModel, generateDevCertificates } from '@fedcxr/federated';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Coordinator } from './coordinator.js';
import { coordinatorConfig, MODEL, makeSiteData, newAgent, tempDir } from './testing.js';

const dir = tempDir('fedcxr-tls-');
let certs: Awaited<ReturnType<typeof generateDevCertificates>>;
beforeAll(async () => {
  certs = await generateDevCertificates({ outDir: join(dir.path, 'certs'), sites: ['site-1', 'site-2'] });
});
afterAll(() => dir.remove());

describe('TLS with the development CA (loopback)', () => {
  it('serves HTTPS/WSS: a site trusting the dev CA completes a round; one without it is refused', async () => {
    const data = makeSiteData(1, 60);
    const coordinator = new Coordinator(
      {
        ...coordinatorConfig(join(dir.path, 'state1'), ['site-1']),
        tls: { cert: certs.serverCert, key: certs.serverKey },
      },
      { initialModel: createTabularModel(MODEL, 1) },
    );
    const url = await coordinator.start();
    try {
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:/);
      await expect(newAgent(url, data.sites[0]).start()).rejects.toThrow(
        /cannot reach.*(self-signed|unable to verify|certificate)/i,
      );
      const agent = newAgent(url, data.sites[0], { ca: readFileSync(certs.ca, 'utf8') });
      await agent.start();
      const summary = await coordinator.runRound();
      expect(summary.outcome).toBe('aggregated');
      await agent.stop();
    } finally {
      await coordinator.close();
    }
  });

  it('with mutual TLS, only the site holding its own client certificate gets in', async () => {
    const data = makeSiteData(2, 60);
    const coordinator = new Coordinator(
      {
        ...coordinatorConfig(join(dir.path, 'state2'), ['site-1', 'site-2']),
        tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
      },
      { initialModel: createTabularModel(MODEL, 1) },
    );
    const url = await coordinator.start();
    const ca = readFileSync(certs.ca, 'utf8');
    const site1 = certs.sites.find((s) => s.id === 'site-1')!;
    try {
      await expect(newAgent(url, data.sites[0], { ca }).start()).rejects.toThrow(/client certificate/);
      // site-2 presenting site-1's certificate is refused too.
      const stolen = { ca, cert: readFileSync(site1.cert, 'utf8'), key: readFileSync(site1.key, 'utf8') };
      await expect(newAgent(url, data.sites[1], stolen).start()).rejects.toThrow(/client certificate/);
      const agent = newAgent(url, data.sites[0], stolen);
      await agent.start();
      expect(agent.connected).toBe(true);
      await agent.stop();
    } finally {
      await coordinator.close();
    }
  });
});
