// Allure 3 configuration of the mcuqual deployment report (used by `mcuqual-report`).
export default {
  name: "mcuqual deployment report",
  output: "./reports/allure-report",
  historyPath: "./reports/allure-history.jsonl",
};
