{
  apiVersion: 'obsgen/v1',
  steps: [ s for s in ],
}
