import { defineConfig } from "vitest/config";

// Tiers live in the file name (STYLE §5). Integration and e2e tests talk to real services, so they
// run with fewer workers on this 2-core machine and with longer time-outs.
export default defineConfig({
  test: {
    projects: [
      { test: { name: "unit", include: ["**/*.unit.spec.ts"], exclude: ["node_modules/**"], testTimeout: 30_000 } },
      {
        test: {
          name: "int",
          include: ["**/*.int.spec.ts"],
          exclude: ["node_modules/**"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["**/*.e2e.spec.ts"],
          exclude: ["node_modules/**", "test/chaos/**"],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "chaos",
          include: ["test/chaos/**/*.spec.ts"],
          testTimeout: 600_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
