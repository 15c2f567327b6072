local steps = [ 'a', 'b' ];
{
  apiVersion: 'obsgen/v1',
  steps: [ s + 1 for s in steps ],
}
