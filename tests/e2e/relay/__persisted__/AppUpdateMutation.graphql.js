/**
 * @generated SignedSource<<0a638fc50242f706138b097d3f4af4fc>>
 * @relayHash 9402123a14f52060e29b0692d89fa2f4
 * @lightSyntaxTransform
 */

/* eslint-disable */

'use strict';

// @relayRequestID 4598e68ac2ad0c5c27ae7b33dbbce8cfd2f12197e600b878676906e496dff7f3

var node = (function(){
var v0 = [
  {
    "defaultValue": null,
    "kind": "LocalArgument",
    "name": "id"
  },
  {
    "defaultValue": null,
    "kind": "LocalArgument",
    "name": "identifier"
  }
],
v1 = [
  {
    "alias": null,
    "args": [
      {
        "kind": "Variable",
        "name": "id",
        "variableName": "id"
      },
      {
        "fields": [
          {
            "kind": "Variable",
            "name": "identifier",
            "variableName": "identifier"
          }
        ],
        "kind": "ObjectValue",
        "name": "input"
      }
    ],
    "concreteType": "UserOAuthSourceConnection",
    "kind": "LinkedField",
    "name": "updateUserOAuthSourceConnection",
    "plural": false,
    "selections": [
      {
        "alias": null,
        "args": null,
        "kind": "ScalarField",
        "name": "id",
        "storageKey": null
      },
      {
        "alias": null,
        "args": null,
        "kind": "ScalarField",
        "name": "identifier",
        "storageKey": null
      }
    ],
    "storageKey": null
  }
];
return {
  "fragment": {
    "argumentDefinitions": (v0/*:: as any*/),
    "kind": "Fragment",
    "metadata": null,
    "name": "AppUpdateMutation",
    "selections": (v1/*:: as any*/),
    "type": "Mutation",
    "abstractKey": null
  },
  "kind": "Request",
  "operation": {
    "argumentDefinitions": (v0/*:: as any*/),
    "kind": "Operation",
    "name": "AppUpdateMutation",
    "selections": (v1/*:: as any*/)
  },
  "params": {
    "id": "4598e68ac2ad0c5c27ae7b33dbbce8cfd2f12197e600b878676906e496dff7f3",
    "metadata": {},
    "name": "AppUpdateMutation",
    "operationKind": "mutation",
    "text": null
  }
};
})();

node.hash = "4f24d041f7f1c263d8ce455383d90870";

export default node;
